"""pyinfra deploy the PowerDNS integration test runs with `pyinfra @local` (host data from --data):
``pdns_case`` picks what to apply; settings come from the same host data the app server reads."""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files

from codeb_infra.config.app import DnsSettings
from codeb_infra.controller.errors import clear_errors
from codeb_infra.domain.errors import CodebError
from codeb_infra.operations import powerdns as pdns
from codeb_infra.roles import dns as dns_role

LONG_TXT = "k=" + "0123456789" * 30 + ' "quoted" \\ end'  # 300+ characters: two character-strings

with clear_errors():
    settings = DnsSettings.from_data(host.data)
    api = settings.api
    case = host.data.get("pdns_case")
    base = host.data.get("pdns_dir")

    def project_records(project: str, env: str, domains: list[str], present: bool = True, prune: bool = True) -> None:
        # What a flow does for a project's domain and preview domain.
        zone = settings.zone_of(domains[0])
        if zone is None:
            raise CodebError(f"{domains[0]} is in no zone codeb manages")
        pdns.address_records(
            name=f"Addresses of {project}/{env}",
            zone=zone,
            names=domains,
            addresses=settings.addresses(),
            owner=f"{project}/{env}",
            present=present,
            prune=prune,
            api=api,
        )

    def one_valid_change() -> None:
        pdns.record(
            name="A valid change",
            zone="codeb.test",
            record_name="before-the-bad-one.codeb.test",
            rtype="A",
            contents=["192.0.2.50"],
            api=api,
        )

    if case == "setup":
        # The role's steps that need neither apt nor systemd, on this machine's paths.
        files.put(
            name="Install codeb-pdns", src=str(dns_role.TOOL_SOURCE), dest=api.tool, mode="755", create_remote_dir=True
        )
        files.directory(name="Secrets directory", path=api.key_file.rsplit("/", 1)[0], mode="700")
        pdns.sqlite_schema(name="PowerDNS database", database=f"{base}/pdns.sqlite3", owner="root", tool=api.tool)
        files.put(
            name="PowerDNS config",
            mode="640",
            dest=f"{base}/pdns.d/codeb.conf",
            create_remote_dir=True,
            src=StringIO(
                dns_role.config_text(
                    settings, database=f"{base}/pdns.sqlite3", key_conf=f"{base}/pdns.d/codeb-api.conf"
                )
            ),
        )
        pdns.api_key(name="PowerDNS API key", conf=f"{base}/pdns.d/codeb-api.conf", group="root", api=api)
    elif case == "records":
        dns_role.managed_zones(settings)
        project_records("myapp", "production", ["myapp.codeb.test", "myapp-preview.codeb.test"])
        project_records("myapp", "staging", ["myapp-staging.codeb.test"])
        pdns.record(
            name="www CNAME",
            zone="codeb.test",
            record_name="www.codeb.test",
            rtype="CNAME",
            contents="myapp.codeb.test",
            owner="myapp/production",
            api=api,
        )
        pdns.record(
            name="SPF",
            zone="codeb.test",
            record_name="codeb.test",
            rtype="TXT",
            contents="v=spf1 -all",
            ttl=300,
            api=api,
        )
        pdns.record(
            name="Long TXT", zone="codeb.test", record_name="_long.codeb.test", rtype="TXT", contents=LONG_TXT, api=api
        )
        pdns.record(
            name="MX",
            zone="codeb.test",
            record_name="codeb.test",
            rtype="MX",
            contents=["20 mail2.codeb.test", "10 mail.codeb.test"],
            api=api,
        )
    elif case == "remove":
        pdns.record(
            name="Remove preview A",
            zone="codeb.test",
            record_name="myapp-preview.codeb.test",
            rtype="A",
            present=False,
            owner="myapp/production",
            api=api,
        )
        project_records("myapp", "production", ["myapp-preview.codeb.test"], present=False, prune=False)
        pdns.owner_records_removed(name="Remove staging records", zone="codeb.test", owner="myapp/staging", api=api)
    elif case == "bad-outside":
        one_valid_change()
        pdns.record(zone="codeb.test", record_name="myapp.other.test", rtype="A", contents=["192.0.2.1"], api=api)
    elif case == "bad-cname":
        one_valid_change()
        pdns.record(
            zone="codeb.test",
            record_name="myapp.codeb.test",
            rtype="CNAME",
            contents=["www.codeb.test"],
            owner="myapp/production",
            api=api,
        )
    elif case == "bad-ttl":
        one_valid_change()
        pdns.record(zone="codeb.test", record_name="ttl.codeb.test", rtype="A", contents=["192.0.2.1"], ttl=30, api=api)
    elif case == "bad-name":
        one_valid_change()
        pdns.record(zone="codeb.test", record_name="my app.codeb.test", rtype="A", contents=["192.0.2.1"], api=api)
    elif case == "bad-hand":
        one_valid_change()
        pdns.record(zone="codeb.test", record_name="hand.codeb.test", rtype="A", contents=["192.0.2.1"], api=api)
    else:
        raise CodebError(f"unknown pdns_case {case!r}")
