"""Foundation building blocks: keys, network, secure buckets, log retention."""
