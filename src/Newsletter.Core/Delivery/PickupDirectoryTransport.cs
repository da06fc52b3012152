using MimeKit;

namespace Newsletter.Delivery;

/// <summary>
/// Writes each message as an <c>.eml</c> file, for running without an SMTP server. A file appears
/// whole or not at all (written under a temporary name, then renamed).
/// </summary>
public sealed class PickupDirectoryTransport(string directory) : IMailTransport
{
    public string Directory { get; } = Path.GetFullPath(directory);

    public string Destination => Directory;

    public IMailLane OpenLane() => new Lane(Directory);

    private sealed class Lane(string directory) : IMailLane
    {
        public async Task<SendOutcome> SendAsync(MimeMessage message, MailboxAddress envelopeSender, MailboxAddress recipient, CancellationToken ct = default)
        {
            System.IO.Directory.CreateDirectory(directory);
            var id = (message.MessageId ?? Guid.NewGuid().ToString("n")).Split('@')[0];
            var safe = new string(id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray());
            var path = Path.Combine(directory, $"{DateTime.UtcNow:yyyyMMddTHHmmss}-{safe}.eml");
            var temp = path + ".tmp";
            await using (var stream = File.Create(temp))
            {
                var options = FormatOptions.Default.Clone();
                options.NewLineFormat = NewLineFormat.Dos;
                await message.WriteToAsync(options, stream, ct);
            }
            File.Move(temp, path, overwrite: true);
            return SendOutcome.Sent;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
