"""The Llama Land world server: actors, wire protocol, rooms, accounts, persistence and the CLI."""
