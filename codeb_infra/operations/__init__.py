"""Operations: thin and idempotent; each reads live state through a fact and yields only what differs."""
