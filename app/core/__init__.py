"""The shared kernel: database base class, errors, clock. Imports no domain."""
