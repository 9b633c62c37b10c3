//! Every weight kind against a naive dense reference.
