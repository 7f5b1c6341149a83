"""A test's status, derived purely from its children: phase and conditions (`phase`), pod health
(`pod_health`), the master's numbers (`results`), the verdict on them (`thresholds`), and their
shared vocabulary (`conditions`)."""
