"""The stores: SQLite (the record: catalog, journal, graph mirror), and the two engines
projected from it, Milvus (vectors) and Kuzu (the entity graph). Each engine's dialect is
written in exactly one module here."""
