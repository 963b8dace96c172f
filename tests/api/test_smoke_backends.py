"""The core edit path on both database backends."""


def test_edit_cycle_on_backend(db_clients):
    c = db_clients()
    c.signup("owner@example.com")
    m = c.create_map("Backend map")
    layer = m["layers"][0]["id"]
    base = f"/api/v1/maps/{m['id']}/layers/{layer}"
    r = c.post(base + "/features", json={"geometry": {"type": "Point", "coordinates": [10, 20]},
                                         "properties": {"name": "a"}})
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    r = c.patch(f"{base}/features/{fid}", json={"properties": {"name": "b"}}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = c.get(base)
    assert r.json()["feature_count"] == 1 and r.json()["bbox"] == [10, 20, 10, 20]
