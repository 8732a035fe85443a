using RedisPoolKit.Cli.Commands;
using RedisPoolKit.Cli.Redis;
using static RedisPoolKit.Cli.Tests.Unit.Snapshots;

namespace RedisPoolKit.Cli.Tests.Unit;

public sealed class DoctorCheckTests
{
    private static readonly DoctorThresholds Thresholds = new(TimeSpan.FromMinutes(10));
    private static readonly ProcessLimits Remote = new(null, "the server runs on redis-1, not this host");

    private static List<Finding> Evaluate(ServerSnapshot server, ServerSnapshot? after = null, ProcessLimits? limits = null) =>
        DoctorCommand.Evaluate(server, after, Thresholds, limits ?? Remote);

    [Fact]
    public void A_healthy_server_has_only_info_findings()
    {
        var clients = Enumerable.Range(0, 20).Select(i => Client($"svc{i % 4}:i{i}:p:mux0", idle: 1)).ToList();

        var findings = Evaluate(Server(clients, maxClients: 1000));

        Assert.All(findings, f => Assert.Equal(DoctorCommand.Info, f.Severity));
        Assert.Equal(0, DoctorCommand.ExitCode(findings));
        Assert.Contains(findings, f => f.Code == "file_limit" && f.Summary.Contains("redis-1", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(79, 0)]
    [InlineData(80, 1)]
    [InlineData(94, 1)]
    [InlineData(95, 2)]
    public void Utilization_warns_at_80_and_is_critical_at_95_percent(int connected, int exitCode)
    {
        var clients = Enumerable.Range(0, connected).Select(i => Client($"svc{i % 5}:i{i}:p:mux0", idle: 1)).ToList();

        var findings = Evaluate(Server(clients, maxClients: 100));

        Assert.Equal(exitCode, DoctorCommand.ExitCode(findings));
        Assert.Equal(exitCode > 0, findings.Any(f => f.Code == "utilization"));
    }

    [Fact]
    public void Timeout_zero_with_many_long_idle_clients_and_keepalive_zero_are_warnings()
    {
        var clients = Enumerable.Range(0, 20).Select(i => Client($"svc{i % 4}:i{i}:p:lease0", idle: 3600)).ToList();

        var findings = Evaluate(Server(clients, timeout: 0, keepalive: 0));

        Assert.Contains(findings, f => f.Code == "timeout_zero" && f.Severity == DoctorCommand.Warning && f.Summary.Contains("20 of 20", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Code == "tcp_keepalive_zero" && f.Severity == DoctorCommand.Warning);
        Assert.DoesNotContain(Evaluate(Server(clients, timeout: 300)), f => f.Code == "timeout_zero");
    }

    [Fact]
    public void Rejections_during_the_sample_are_critical()
    {
        var clients = new[] { Client("svc:i:p:mux0") };
        var before = Server(clients, rejected: 10, at: DateTimeOffset.UnixEpoch);
        var after = Server(clients, rejected: 14, at: DateTimeOffset.UnixEpoch.AddSeconds(2));

        var findings = Evaluate(before, after);

        var rejecting = Assert.Single(findings, f => f.Code == "rejecting");
        Assert.Equal(DoctorCommand.Critical, rejecting.Severity);
        Assert.Contains("4 connections rejected in 2 s", rejecting.Summary, StringComparison.Ordinal);
        Assert.Contains(Evaluate(before, Server(clients, rejected: 10)), f => f.Code == "rejected_before" && f.Severity == DoctorCommand.Info);
    }

    [Fact]
    public void Unnamed_clients_and_one_holder_of_a_busy_server_are_warnings()
    {
        var clients = Enumerable.Range(0, 85).Select(_ => Client(idle: 1, address: "10.0.0.9:4000")).ToList();

        var findings = Evaluate(Server(clients, maxClients: 100));

        Assert.Contains(findings, f => f.Code == "unnamed_clients" && f.Severity == DoctorCommand.Warning);
        Assert.Contains(findings, f => f.Code == "one_holder" && f.Severity == DoctorCommand.Warning && f.Summary.Contains("host 10.0.0.9", StringComparison.Ordinal));
    }

    [Fact]
    public void A_maxclients_lowered_to_the_file_limit_is_a_warning_and_one_above_it_is_critical()
    {
        var clients = new[] { Client("svc:i:p:mux0") };

        Assert.Contains(Evaluate(Server(clients, maxClients: 992), limits: new ProcessLimits(1024, null)), f => f.Code == "file_limit" && f.Severity == DoctorCommand.Warning);
        Assert.Contains(Evaluate(Server(clients, maxClients: 10_000), limits: new ProcessLimits(1024, null)), f => f.Code == "file_limit" && f.Severity == DoctorCommand.Critical);
        Assert.Contains(Evaluate(Server(clients, maxClients: 900), limits: new ProcessLimits(1024, null)), f => f.Code == "file_limit" && f.Severity == DoctorCommand.Info);
    }

    [Fact]
    public void Reads_the_open_file_limit_of_a_local_redis_server_from_proc()
    {
        var proc = Directory.CreateTempSubdirectory("redispool-proc");
        try
        {
            Directory.CreateDirectory(Path.Combine(proc.FullName, "42"));
            File.WriteAllText(Path.Combine(proc.FullName, "42", "comm"), "redis-server\n");
            File.WriteAllText(Path.Combine(proc.FullName, "42", "limits"), "Limit                     Soft Limit           Hard Limit           Units\nMax open files            4096                 1048576              files\n");
            Directory.CreateDirectory(Path.Combine(proc.FullName, "43"));
            File.WriteAllText(Path.Combine(proc.FullName, "43", "comm"), "bash\n");

            Assert.Equal(new ProcessLimits(4096, null), LocalProcess.Read("127.0.0.1:6379", 42, proc.FullName));
            Assert.Contains("not redis-server", LocalProcess.Read("127.0.0.1:6379", 43, proc.FullName).Why, StringComparison.Ordinal);
            Assert.Contains("no process 44", LocalProcess.Read("127.0.0.1:6379", 44, proc.FullName).Why, StringComparison.Ordinal);
            Assert.Contains("not this host", LocalProcess.Read("10.1.2.3:6379", 42, proc.FullName).Why, StringComparison.Ordinal);
        }
        finally
        {
            proc.Delete(recursive: true);
        }
    }

    [Fact]
    public void One_host_of_unnamed_clients_holding_most_sockets_is_not_told_to_resize_pools()
    {
        List<ClientEntry> clients = [.. Enumerable.Range(0, 12).Select(_ => Client(address: "10.0.0.9:4000")), .. Enumerable.Range(0, 3).Select(i => Client($"orders:i{i}:p:mux0"))];

        var holder = Assert.Single(Evaluate(Server(clients, maxClients: 16)), f => f.Code == "one_holder");

        Assert.Contains("host 10.0.0.9", holder.Summary, StringComparison.Ordinal);
        Assert.DoesNotContain("pool sizes", holder.Fix, StringComparison.Ordinal);
        Assert.Contains("ss -tnp", holder.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void One_service_holding_most_sockets_is_told_to_check_its_pool_sizes()
    {
        var clients = Enumerable.Range(0, 12).Select(i => Client($"orders:i{i % 3}:p:mux{i}")).ToList();

        var holder = Assert.Single(Evaluate(Server(clients, maxClients: 1000)), f => f.Code == "one_holder");

        Assert.Contains("redispool budget", holder.Fix, StringComparison.Ordinal);
    }
}
