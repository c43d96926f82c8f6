"""Connect to a chain: the embedded one (py-evm in this process), Anvil, Ganache or any JSON-RPC URL."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import cast
from urllib.parse import urlsplit

import requests
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from daisee.chain.embedded import embedded_provider
from daisee.chain.networks import BUILT_IN, DEV_POLICY, Network, TxPolicy, find_network
from daisee.errors import DaiseeError
from daisee.loopback import is_loopback_url
from daisee.untrusted_json import UntrustedJSONError, parse_untrusted

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
DEV_KINDS = ("embedded", "anvil", "ganache")
_START_HINT = {
    "anvil": "start one with `daisee chain start` or pass its URL with --chain",
    "ganache": "start one with `daisee chain start --kind ganache` or pass its URL with --chain",
    "rpc": "check the URL and that the node is running",
}
MAX_RPC_ANSWER_BYTES = 256 << 20  # the largest RPC answer parsed (a long eth_getLogs range is tens of MB)
RPC_POLICY = TxPolicy(confirmations=1)  # an unnamed node that is not a development chain


@dataclass
class Chain:
    """A connected chain.

    `kind` is `embedded`, `anvil`, `ganache` or `rpc` (any other node); development kinds offer
    unlocked, funded accounts. `network` is the profile it was reached through, if any; `policy` says
    how transactions are priced and awaited there.
    """

    w3: Web3
    kind: str
    chain_id: int
    url: str | None = None
    network: str | None = None
    policy: TxPolicy = field(default=DEV_POLICY)

    @property
    def is_dev(self) -> bool:
        return self.kind in DEV_KINDS

    @property
    def label(self) -> str:
        """A short name for messages: the kind and chain id, never the URL (it may carry an API key)."""
        return f"{self.network or self.kind} (chain id {self.chain_id})"

    def dev_accounts(self) -> list[str]:
        """The node's unlocked accounts (development chains only)."""
        if not self.is_dev:
            raise DaiseeError(
                f"{self.label} has no development accounts: pass --account NAME (see `daisee account new`)"
            )
        return list(self.w3.eth.accounts)


def redact(url: str) -> str:
    """`url` without credentials, path or query (RPC URLs often embed an API key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def describe_error(exc: BaseException, url: str | None) -> str:
    """One line for `exc`, with the RPC URL's credentials, path and query removed (they may hold an API key)."""
    text = str(exc) if isinstance(exc, DaiseeError) else f"{type(exc).__name__}: {exc}"
    if url:
        text = text.replace(url, redact(url))
        parts = urlsplit(url)
        for secret in (parts.path, parts.query, parts.username, parts.password):
            if secret and secret != "/":
                text = text.replace(secret, "…")
    return " ".join(text.split())


class BadAnswerError(DaiseeError):
    """An RPC answer that is not JSON daisee takes: oversize, too deeply nested, or not JSON."""


class _UntrustedAnswers(HTTPProvider):
    """web3's HTTP provider, whose answers are untrusted JSON: bounded in size and depth before parsing (a
    nested answer from a hostile node would otherwise overflow the stack, under py_ecc's recursion limit)."""

    @staticmethod
    def decode_rpc_response(raw_response: bytes) -> RPCResponse:
        try:
            return cast(RPCResponse, parse_untrusted(raw_response, max_bytes=MAX_RPC_ANSWER_BYTES))
        except UntrustedJSONError as exc:
            raise BadAnswerError(
                f"answered what daisee refuses ({exc}): check that the URL is a JSON-RPC node"
            ) from None


def _session_for(url: str) -> requests.Session | None:
    """A node on this machine is reached directly: without the environment's proxies, which would otherwise
    route loopback calls through a proxy (requests bypasses one only for hosts listed in $NO_PROXY), and
    without reading the environment at every call (a fifth to a third of the CPU time of a call). Others: web3's own."""
    if not is_loopback_url(url):
        return None
    session = requests.Session()
    session.trust_env = False
    return session


def _without_fee_validation(w3: Web3) -> Web3:
    """`w3` without web3's gas price strategy middleware, which reads the latest block before every
    transaction to check its fee fields: daisee's senders price each transaction themselves ({current_fees}),
    and web3 still fills the fees of a transaction sent without them."""
    w3.middleware_onion.remove("gas_price_strategy")
    return w3


def _kind_of(w3: Web3) -> str:
    client = w3.client_version.lower()
    for kind in ("anvil", "ganache"):
        if client.startswith(kind):
            return kind
    return "rpc"


def _uses_poa_extra_data(w3: Web3) -> bool:
    """Clique/Aura-style chains put a signature in extraData, longer than Ethereum's 32 bytes."""
    block = w3.provider.make_request("eth_getBlockByNumber", ["latest", False])  # type: ignore[arg-type]
    extra = (block.get("result") or {}).get("extraData", "0x")
    return len(extra) > 2 + 2 * 32


def connect(
    target: str = "embedded",
    *,
    expected_chain_id: int | None = None,
    confirmations: int | None = None,
    timeout: float = 30.0,
) -> Chain:
    """Connect to `target`: `embedded`, `anvil`, `ganache` (on the default local port), an http(s) URL,
    or the name of a network profile (see {daisee.chain.networks}).

    Raises DaiseeError when the node is unreachable or its chain id differs from the profile's or
    `expected_chain_id`. `confirmations` overrides the policy's.
    """
    if target == "embedded":
        w3 = _without_fee_validation(Web3(embedded_provider()))
        chain = Chain(w3, "embedded", w3.eth.chain_id)
        return _checked(_with_confirmations(chain, confirmations), expected_chain_id)
    network: Network | None = None
    if target in ("anvil", "ganache"):
        url, named = DEFAULT_RPC_URL, target
    elif urlsplit(target).scheme in ("http", "https"):
        url, named = target, "rpc"
    elif network := find_network(target):
        url, named = network.rpc_url(), "rpc"
    else:
        raise DaiseeError(
            f"unknown chain {target!r}: use embedded, anvil, ganache, an http(s):// RPC URL or a network profile "
            f"({', '.join(BUILT_IN)} or your own; see `daisee chain networks`)"
        )

    provider = _UntrustedAnswers(url, request_kwargs={"timeout": timeout}, session=_session_for(url))
    # eth_chainId and the like are asked once, not before every call; nothing else (web3 would also cache
    # transactions by hash, and check each with an extra request that fails, loudly, for a pending one)
    provider.cache_allowed_requests = True
    provider.cacheable_requests = {RPCEndpoint(m) for m in ("eth_chainId", "net_version", "web3_clientVersion")}
    w3 = _without_fee_validation(Web3(provider))
    try:
        chain_id = w3.eth.chain_id
    except BadAnswerError as exc:
        raise DaiseeError(f"the RPC node at {redact(url)} {exc}") from None
    except Exception as exc:  # requests and aiohttp raise many types for one cause: nobody answers
        hint = f"check ${network.rpc_env} and that the node is running" if network else _START_HINT[named]
        raise DaiseeError(f"cannot reach the RPC node at {redact(url)}: {hint}") from exc
    kind = _kind_of(w3)
    if kind == "rpc" and _uses_poa_extra_data(w3):
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    policy = network.policy if network else DEV_POLICY if kind in DEV_KINDS else RPC_POLICY
    chain = Chain(w3, kind, chain_id, url, network.name if network else None, policy)
    if network and chain_id != network.chain_id:
        raise DaiseeError(
            f"wrong chain: network {network.name!r} is chain id {network.chain_id} but the node at {redact(url)} "
            f"reports {chain_id}: fix ${network.rpc_env} or the profile"
        )
    return _checked(_with_confirmations(chain, confirmations), expected_chain_id)


def _with_confirmations(chain: Chain, confirmations: int | None) -> Chain:
    if confirmations is not None:
        chain.policy = replace(chain.policy, confirmations=confirmations)
    return chain


def _checked(chain: Chain, expected_chain_id: int | None) -> Chain:
    if expected_chain_id is not None and chain.chain_id != expected_chain_id:
        raise DaiseeError(
            f"wrong chain: the node at {redact(chain.url) if chain.url else chain.kind} has chain id {chain.chain_id}, "
            f"expected {expected_chain_id}: point --chain at the right node or fix --chain-id"
        )
    return chain
