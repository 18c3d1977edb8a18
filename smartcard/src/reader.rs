//! PC/SC readers: list, card presence and ATR, insert/remove events (owned by the reader/PIV work).
