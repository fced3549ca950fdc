"""SMSC.kz message history as Dagster assets."""
