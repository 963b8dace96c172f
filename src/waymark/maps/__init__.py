"""Maps, members, layers, features, history, import/export: the domain of Waymark."""
