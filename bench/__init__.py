"""The benchmark suite (issue 6): `python -m bench`, `make bench`, `make bench-quick`."""
