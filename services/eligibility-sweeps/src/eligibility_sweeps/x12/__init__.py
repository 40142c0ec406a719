"""X12 005010X279A1 eligibility: building 270s, reading 271s, 999s and TA1s.

Pure code, no I/O: the transport and storage layers call it.
"""
