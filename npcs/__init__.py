"""NPC actors and the inference herd (see the inference and economy issues)."""
