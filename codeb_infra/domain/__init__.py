"""Pure domain: names, ports, slots and their state machine. No I/O here."""
