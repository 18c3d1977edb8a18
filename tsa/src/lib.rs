//! imza-tsa: RFC 3161 time-stamping authority core; being built for issue 3.
