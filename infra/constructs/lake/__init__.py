"""Data lake constructs: zones, catalog, Glue ETL, Lake Formation, Athena, CDR stream, orchestration."""
