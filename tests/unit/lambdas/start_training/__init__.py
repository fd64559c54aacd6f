"""start_training: parsing, decision rules, concurrency and the handler, under moto."""
