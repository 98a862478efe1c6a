//! Fault tests of real `paddock` ensembles, checked by client histories.
