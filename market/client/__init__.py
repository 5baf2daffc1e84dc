"""The exchange SDK: :class:`Client` for clients, :class:`ProviderClient` for provider agents (over HTTP).

Both sign every state-changing or private request (``market.protocol``); errors from the exchange
raise :class:`ApiError` with the refusal's code, message and hint.
"""

from market.client.errors import ApiError, ClientError  # noqa: F401
from market.client.client import Client  # noqa: F401
from market.client.provider import ProviderClient  # noqa: F401
