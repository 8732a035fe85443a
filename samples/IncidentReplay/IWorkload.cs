namespace IncidentReplay;

/// <summary>How a phase talks to Redis. The driver runs the same load through both implementations.</summary>
internal interface IWorkload : IAsyncDisposable
{
    /// <summary>The anti-patterns or the pools in play, printed before the phase and in the report.</summary>
    IReadOnlyList<string> Labels { get; }

    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>The sockets the pools count (<c>GetStatistics().Sockets</c> summed), or null when there are no pools.</summary>
    int? PoolSockets => null;

    /// <summary>Subscribes <paramref name="recorder"/> to the pools' own signals (breaker, server utilization); nothing without pools.</summary>
    void Observe(PhaseRecorder recorder)
    {
    }

    /// <summary>order-service: GET /profile/{id}, cache-aside.</summary>
    Task OrderRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken);

    /// <summary>cart-service: POST /cart/{session}, then read the cart back.</summary>
    Task CartRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken);

    /// <summary>order-service's POST /notify: pushes one notification.</summary>
    Task PushAsync(string id, CancellationToken cancellationToken);

    /// <summary>notification-worker: one BLPOP of up to 1 s; null when the queue stayed empty.</summary>
    Task<string?> PopAsync(int instance, int consumer, CancellationToken cancellationToken);

    /// <summary>The autoscaler took this consumer away (end of the spike).</summary>
    ValueTask ConsumerStoppedAsync(int instance, int consumer);
}
