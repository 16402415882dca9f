"""Private helpers for the rest of the package (it imports nothing above it): array
normalisation, progress, optional imports, atomic files, error trimming, line splitting, hashing.
The names inside are public to gio_rs, not to its users."""
