"""The exchange's web console: server-rendered pages of public market data (no scripts, no external assets;
charts are inline SVG), mounted by the service app with ``app.include_router(web.router(rt))``.

Modules: :mod:`routes` (the pages), :mod:`queries` (read-only queries), :mod:`charts` (SVG).
"""

from market.exchange.web.routes import router

__all__ = ["router"]
