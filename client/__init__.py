"""Llama Land clients: a headless network client, the bots built on it, and (later) the Arcade app."""
