using System.Xml.Linq;
using Dapper;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Newsletter.Web;

/// <summary>
/// Keeps ASP.NET Core's data-protection keys (what antiforgery tokens are sealed with) in
/// PostgreSQL, so a form opened before a restart, or served by another process of the same
/// service, still posts.
/// </summary>
internal sealed class DataProtectionKeysInDatabase(NpgsqlDataSource db) : IConfigureOptions<KeyManagementOptions>, IXmlRepository
{
    public void Configure(KeyManagementOptions options) => options.XmlRepository = this;

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var connection = db.OpenConnection();
        return connection.Query<string>("select xml from data_protection_keys order by id").Select(XElement.Parse).ToList();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var connection = db.OpenConnection();
        connection.Execute("insert into data_protection_keys (name, xml) values (@friendlyName, @xml) on conflict (name) do nothing",
            new { friendlyName, xml = element.ToString(SaveOptions.DisableFormatting) });
    }
}
