"""The control plane on the app server: API keys and roles, the tamper-evident audit log, the one
tool registry behind `POST /api/tool` and `/mcp`, and the worker processes that run the flows."""
