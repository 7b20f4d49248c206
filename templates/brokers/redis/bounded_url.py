def _bounded(url):
    """REDIS_URL with every wait bounded: connecting, each command, and a
    dead peer found by TCP keepalive and a ping every 30 s (redis-py reads
    these from the URL's query; those you set yourself are kept)."""
    bounds = "socket_connect_timeout=5&socket_timeout=30&socket_keepalive=true"
    bounds += "&health_check_interval=30"
    return f"{url}{'&' if '?' in url else '?'}{bounds}"