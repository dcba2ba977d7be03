// Weighted rendezvous hashing and signed ring updates.
