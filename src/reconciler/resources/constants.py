"""Ports and container names the builders share (the Service and the Jobs must agree on them)."""

MASTER_PORT = 5557
# Older Locust masters also bound master-port + 1; upstream still exposes it on the Service.
MASTER_SECONDARY_PORT = 5558
WEB_UI_PORT = 8089
WORKER_PORT = 8080
MASTER_CONTAINER_PORTS = (MASTER_PORT, MASTER_SECONDARY_PORT, WEB_UI_PORT)
WORKER_CONTAINER_PORTS = (WORKER_PORT,)

METRICS_EXPORTER_CONTAINER = "locust-metrics-exporter"
