"""The FastAPI application: integrators start orders, people decide, everyone reads."""
