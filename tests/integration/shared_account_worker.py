"""One program sending from a shared account, for test_shared_account: `python -m
tests.integration.shared_account_worker URL CONTRACT NAME THREADS CALLS`. Each of THREADS threads has its
own Sender and declares CALLS readings named NAME/<thread>/<call>, half one by one and half in flight
together. Exits non-zero if any call failed."""

from __future__ import annotations

import sys
import threading

from eth_utils import keccak

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import connect
from daisee.chain.transact import Sender


def declare_all(url: str, contract: str, name: str, threads: int, calls: int) -> list[str]:
    """Run the threads; returns the errors they met."""
    errors: list[str] = []

    def work(thread: int) -> None:
        chain = connect(url)
        sender = Sender.dev(chain, 0)
        naive = chain.w3.eth.contract(
            address=chain.w3.to_checksum_address(contract), abi=load_artifact("NaiveReadings")["abi"]
        )
        declared = [
            (naive.functions.declare(keccak(text=f"{name}/{thread}/{i}"), i, 1, 1), f"declaring {name}/{thread}/{i}")
            for i in range(calls)
        ]
        try:
            for call, what in declared[: calls // 2]:
                sender.transact(call, what, repeatable=True)
            sender.transact_all(declared[calls // 2 :], repeatable=True)
        except Exception as exc:  # reported by the test, whatever it is
            errors.append(f"{name}/{thread}: {exc}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


if __name__ == "__main__":
    url, contract, name, threads, calls = sys.argv[1:]
    failures = declare_all(url, contract, name, int(threads), int(calls))
    print("\n".join(failures))
    sys.exit(1 if failures else 0)
