"""The live state in Redis: offers, presence, calls' rooms, revocation stamps, rate limits, caps."""
