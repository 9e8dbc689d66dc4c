"""The graph path: Kuzu store, entity resolution, conflict rules, planning, rendering."""
