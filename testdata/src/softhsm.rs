//! SoftHSM2 fixture (being written).
