#!/usr/bin/env python3
"""The peer service: FastAPI + scikit-learn serving a decision tree trained on the same Telco data,
with the same request and response shape as churn-serve's POST /v1/score.

Run: uvicorn --app-dir benches/peers fastapi_service:app --port 18091 --workers 1
"""
import os
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TELCO", ROOT / "training/data/Telco-Customer-Churn.csv"))

df = pd.read_csv(DATA)
df["TotalCharges"] = pd.to_numeric(df["TotalCharges"], errors="coerce")
y = (df.pop("Churn") == "Yes").astype(int)
ids = df.pop("customerID")
NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]
CATEGORICAL = [c for c in df.columns if c not in NUMERIC]
pre = ColumnTransformer([
    ("num", SimpleImputer(strategy="median"), NUMERIC),
    ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
])
model = GridSearchCV(
    Pipeline([("pre", pre), ("tree", DecisionTreeClassifier(random_state=42))]),
    {"tree__max_depth": list(range(3, 13)), "tree__min_samples_leaf": [1, 5, 10, 20, 50, 100]},
    cv=StratifiedKFold(5, shuffle=True, random_state=42), scoring="neg_log_loss",
).fit(df, y).best_estimator_
COLUMNS = list(df.columns)

app = FastAPI()


@app.post("/v1/score")
def score(body: dict):
    customers = body.get("customers")
    if not isinstance(customers, list) or not customers:
        raise HTTPException(422, "customers must be a non-empty list")
    frame = pd.DataFrame(customers)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HTTPException(422, f"missing fields: {missing}")
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce")
    p = model.predict_proba(frame[COLUMNS])[:, 1]
    return {
        "model": {"name": "telco-sklearn", "version": "1"},
        "results": [
            {"customer_id": c.get("customerID"), "churn_probability": float(v)}
            for c, v in zip(customers, p)
        ],
    }
