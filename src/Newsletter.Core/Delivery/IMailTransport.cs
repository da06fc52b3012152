using MimeKit;

namespace Newsletter.Delivery;

/// <summary>Where messages go: an SMTP server (through lanes, one connection each) or the pickup folder.</summary>
public interface IMailTransport
{
    /// <summary>Where messages go, for people: "smtp://host:port" or the pickup folder's path.</summary>
    string Destination { get; }

    /// <summary>Opens a lane: one connection, used by one worker at a time, for many messages.</summary>
    IMailLane OpenLane();
}

/// <summary>One sending connection. Not thread-safe: one caller at a time.</summary>
public interface IMailLane : IAsyncDisposable
{
    /// <summary>Sends one message to one recipient with <paramref name="envelopeSender"/> as MAIL FROM; never throws for an SMTP or connection failure, it classifies it.</summary>
    Task<SendOutcome> SendAsync(MimeMessage message, MailboxAddress envelopeSender, MailboxAddress recipient, CancellationToken ct = default);
}

public static class MailTransportExtensions
{
    /// <summary>Sends a single message on a lane of its own (previews, tests, confirmations).</summary>
    /// <exception cref="MailNotSentException">The message was not accepted.</exception>
    public static async Task SendAsync(this IMailTransport transport, MimeMessage message, MailboxAddress envelopeSender, MailboxAddress recipient, CancellationToken ct = default)
    {
        await using var lane = transport.OpenLane();
        var outcome = await lane.SendAsync(message, envelopeSender, recipient, ct);
        if (outcome.Result != SendResult.Sent)
            throw new MailNotSentException($"{transport.Destination} did not take the message ({outcome.Result}): {outcome.Reply}");
    }
}

/// <summary>A single message was not accepted by the mail server.</summary>
public sealed class MailNotSentException(string message) : Exception(message);
