"""Instructions per scoring request of a churn-serve binary, counted by valgrind (callgrind): a
number that does not move with a noisy VM's steal time, unlike requests/s.

Runs the server under callgrind twice (N1 and N2 keep-alive requests of one customer each, one
worker) and reports (I(N2) - I(N1)) / (N2 - N1): start-up and shutdown cancel out.
Usage: python3 benches/peers/serve_instructions.py BINARY MODELS_DIR [N1 N2]
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

BODY = json.dumps({"customers": [{
    "customerID": "7590-VHVEG", "gender": "Female", "SeniorCitizen": 0, "Partner": "Yes",
    "Dependents": "No", "tenure": 1, "PhoneService": "No", "MultipleLines": "No phone service",
    "InternetService": "DSL", "OnlineSecurity": "No", "OnlineBackup": "Yes",
    "DeviceProtection": "No", "TechSupport": "No", "StreamingTV": "No", "StreamingMovies": "No",
    "Contract": "Month-to-month", "PaperlessBilling": "Yes", "PaymentMethod": "Electronic check",
    "MonthlyCharges": 29.85, "TotalCharges": "29.85"}]})


def count(binary, models, n, port=18097):
    out = tempfile.mktemp(prefix="callgrind.")
    env = dict(os.environ, RUST_LOG="warn")
    srv = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
         "--models", models, "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/healthz")
                c.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(n):
            c.request("POST", "/v1/score", BODY, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
        c.close()
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=120)
    total = 0
    with open(out) as f:
        for line in f:
            m = re.match(r"^summary:\s+(\d+)", line) or re.match(r"^totals:\s+(\d+)", line)
            if m:
                total = int(m.group(1))
    for f in os.listdir(os.path.dirname(out)):
        if f.startswith(os.path.basename(out)):
            os.remove(os.path.join(os.path.dirname(out), f))
    return total


def main():
    binary, models = sys.argv[1], sys.argv[2]
    n1, n2 = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (200, 1200)
    i1, i2 = count(binary, models, n1), count(binary, models, n2)
    print(f"{binary}: {(i2 - i1) / (n2 - n1):.0f} instructions per request "
          f"({n1}: {i1}, {n2}: {i2})")


if __name__ == "__main__":
    main()
