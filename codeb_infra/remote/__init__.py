"""Programs shipped to the servers; standard library only, Python >= 3.9."""
