"""Everything between daisee and a chain: compiler, artifacts, nodes, connection, accounts, deployment."""
