"""ChampionLookup: the pipeline's Lambda step that finds the champion (the newest approved package)."""
