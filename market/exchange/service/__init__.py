"""The exchange as a service (``raymarket exchange serve``): signed HTTP requests, leases, the background loop.

``create_app(settings)`` builds the FastAPI app; ``serve(settings, host, port)`` runs it with uvicorn;
``python -m market.exchange.service --help`` runs it from a shell.
"""

from market.exchange.service.app import build_app, create_app, serve  # noqa: F401
from market.exchange.service.config import ServiceConfig  # noqa: F401
