"""Event logs from a provider that caps `eth_getLogs` ranges: the report and the relay's recovery read them
in ranges the node accepts, through a capping proxy in front of a real anvil."""

from __future__ import annotations

import pytest
from web3.exceptions import Web3RPCError

from daisee.chain.connect import connect
from daisee.chain.logs import event_logs
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.loop import Loop
from tests.e2e.conftest import Daisee
from tests.e2e.loops import add_household, deploy
from tests.rpc_proxy import RangeCappedProxy

pytestmark = pytest.mark.node


def test_the_report_through_a_provider_that_caps_log_ranges_equals_the_direct_one(
    daisee: Daisee, anvil_node: LocalNode
) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    consumer = add_household(daisee, cli_loop, "house-1", "consumer")
    producer = add_household(daisee, cli_loop, "house-2", "producer")
    cli_loop.advance(3)
    for t, (used, made) in enumerate([(500, 300), (900, 1000)]):
        cli_loop.submit(consumer, "house-1", t, used)
        cli_loop.submit(producer, "house-2", t, 0, made)
    assert daisee("keeper", "run", "--chain", anvil_node.url).exit_code == 0

    direct = daisee("report", "--chain", anvil_node.url, "--json")
    with RangeCappedProxy(anvil_node.url, max_blocks=2) as proxy:
        capped = daisee("report", "--chain", proxy.url, "--json")

    assert capped.exit_code == 0, capped.stderr
    assert capped.json() == direct.json()
    assert [m["consumed_wh"] for m in direct.json()["members"]] == [900, 0]  # cumulative indices
    refused = [q for q in proxy.log_queries if q[1] - q[0] + 1 > 2]
    answered = [q for q in proxy.log_queries if q[1] - q[0] + 1 <= 2]
    assert refused, "the whole range was asked first"
    assert answered


def test_event_logs_joins_the_ranges_in_order_and_keeps_its_filters(anvil_node: LocalNode, daisee: Daisee) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    key = add_household(daisee, cli_loop, "house-1", "consumer")
    cli_loop.advance(4)
    for t in range(2):
        cli_loop.submit(key, "house-1", t, 100 * (t + 1))
    loop = cli_loop.loop
    head = int(connect(anvil_node.url).w3.eth.block_number)
    first = head - 10
    expected = [
        (e["args"]["interval"], e["blockNumber"])
        for e in loop.contract.events.ReadingAccepted.get_logs(from_block=first, to_block=head)
    ]
    assert [i for i, _ in expected] == [0, 1]

    with RangeCappedProxy(anvil_node.url, max_blocks=3) as proxy:
        capped_loop = Loop(Sender.dev(connect(proxy.url), 2), loop.address)
        events = capped_loop.contract.events.ReadingAccepted
        found = [(e["args"]["interval"], e["blockNumber"]) for e in event_logs(events, first, head)]
        asked = list(proxy.log_queries)
        filtered = event_logs(events, first, head, {"interval": 1})

    assert found == expected
    assert [e["args"]["importWh"] for e in filtered] == [200]
    answered = [(start, last) for start, last in asked if last - start + 1 <= 3]
    assert [block for start, last in answered for block in range(start, last + 1)] == list(range(first, head + 1))


def test_a_node_that_refuses_even_one_block_is_not_asked_forever(anvil_node: LocalNode, daisee: Daisee) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    head = int(connect(anvil_node.url).w3.eth.block_number)
    with RangeCappedProxy(anvil_node.url, max_blocks=0) as proxy:
        capped_loop = Loop(Sender.dev(connect(proxy.url), 2), cli_loop.loop.address)
        with pytest.raises(Web3RPCError, match="query exceeds max block range 0"):
            event_logs(capped_loop.contract.events.ReadingAccepted, head - 7, head)
    assert [last - start + 1 for start, last in proxy.log_queries] == [8, 4, 2, 1]
