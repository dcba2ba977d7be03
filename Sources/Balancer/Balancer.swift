// The balancer: assignment, membership from heartbeats, weights, the signed ring, leader election, scaling.
