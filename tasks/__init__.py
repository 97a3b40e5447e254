"""Thin Prefect tasks: each calls one genre_core function and adds retries, logging and artifacts."""
