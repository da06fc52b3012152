namespace Newsletter.Configuration;

/// <summary>The <c>Newsletter:Dkim</c> section. Signing is on when all three keys are set.</summary>
public sealed class DkimOptions
{
    public const string Section = "Newsletter:Dkim";

    /// <summary>The signing domain (<c>d=</c>), normally the From domain.</summary>
    public string? Domain { get; set; }

    /// <summary>The selector (<c>s=</c>); the public key is published at <c>{Selector}._domainkey.{Domain}</c>.</summary>
    public string? Selector { get; set; }

    /// <summary>PEM file with the RSA private key (PKCS#1 or unencrypted PKCS#8), at least 2048 bits.</summary>
    public string? PrivateKeyPath { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(Domain) && !string.IsNullOrWhiteSpace(Selector) && !string.IsNullOrWhiteSpace(PrivateKeyPath);
}
