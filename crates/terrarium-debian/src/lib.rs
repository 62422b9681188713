//! Debian archive client for terrarium (in progress).
