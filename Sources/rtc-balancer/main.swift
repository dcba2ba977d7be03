// rtc-balancer: arrives with the balancer issue.
import Balancer

print("rtc-balancer: not built yet")
