"""The shared real services start and answer (Postgres, anvil, the Ray cluster)."""

import sqlalchemy as sa


def test_postgres_fresh_database(pg_url):
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1 + 1")).scalar() == 2
        tables = conn.execute(sa.text("select count(*) from pg_tables where schemaname='public'")).scalar()
    assert tables == 0
    engine.dispose()


def test_anvil_answers(anvil):
    w3 = anvil.w3
    assert w3.eth.chain_id == 31337
    acct = w3.eth.account.from_key(anvil.dev_keys[0])
    assert w3.eth.get_balance(acct.address) > 10**21


def test_ray_cluster_has_provider_nodes(ray_cluster):
    import ray

    @ray.remote(max_retries=0, num_cpus=0)
    def node_id():
        return ray.get_runtime_context().get_node_id()

    ids = {
        p: ray.get(node_id.options(label_selector={"provider": p}).remote(), timeout=60)
        for p in ray_cluster.providers
    }
    assert len(set(ids.values())) == len(ray_cluster.providers)
