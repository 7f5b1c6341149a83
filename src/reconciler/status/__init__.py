"""A test's status, derived purely from its children: phase and conditions (`phase`), pod health
(`pod_health`), and their shared vocabulary (`conditions`)."""
