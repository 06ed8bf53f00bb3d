"""Transport network operator (TNO): road network, travel demand, dynamic network loading, route and station
choice to a dynamic user equilibrium; exchanges only station arrivals and station prices."""
