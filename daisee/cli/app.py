"""The `daisee` entry point: one group, user errors as one line, no tracebacks."""

from __future__ import annotations

import sys
from typing import Any

import click
import requests

from daisee import __version__
from daisee.chain.compiler import EVM_VERSIONS, SOLC_VERSION
from daisee.cli.output import print_error
from daisee.errors import DaiseeError
from daisee.untrusted_json import bound_recursion


class DaiseeGroup(click.Group):
    """A group that turns DaiseeError, and a node lost mid-command, into `error: …` on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DaiseeError as exc:
            print_error(str(exc))
            sys.exit(1)
        except requests.RequestException as exc:  # the RPC node went away in the middle of a command
            print_error(
                f"the RPC node stopped answering ({type(exc).__name__}): check it, then run the same command again"
            )
            sys.exit(1)
        except KeyboardInterrupt:
            print_error("interrupted")
            sys.exit(130)


@click.group(cls=DaiseeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(
    __version__, "--version", message=f"daisee %(version)s (solc {SOLC_VERSION}, evm {'/'.join(EVM_VERSIONS)})"
)
def cli() -> None:
    """daisee: neighbourhood energy sharing on Ethereum.

    A loop's organiser (the PMO) deploys a loop and admits meters; each household's gateway signs its
    meter readings; the contracts allocate local production and settle who owes whom.

    Chains: `embedded` (in this process, the default), `anvil`, `ganache` or any JSON-RPC URL.
    """


def _register() -> None:
    from daisee.cli import (
        account,
        bench,
        chain,
        compile,
        consent,
        demo,
        deploy,
        flex,
        keeper,
        ledger,
        member,
        meter,
        oracle,
        pmo,
        readings,
        regie,
        relay,
        report,
        terms,
        tutorial,
    )

    for command in (
        account.account,
        bench.bench,
        chain.chain,
        compile.compile_command,
        consent.consent,
        demo.demo,
        deploy.deploy,
        flex.flex,
        keeper.keeper,
        ledger.ledger,
        member.member,
        meter.meter,
        oracle.oracle,
        pmo.pmo,
        readings.readings,
        regie.regie,
        relay.relay,
        report.report,
        terms.terms,
        tutorial.tutorial,
    ):
        cli.add_command(command)


_register()


def main() -> None:
    bound_recursion()  # every module is imported by now, py_ecc's 100000 included
    cli(prog_name="daisee")
