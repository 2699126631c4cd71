/* lakeforge
checks:
  - {type: unique, column: [customer_number, check_number]}
  - {type: relationships, column: customer_number, to: silver.customers}
  - {type: expression, name: amount_positive, expression: amount > 0}
*/
select
    customernumber::integer     as customer_number,
    upper(trim(checknumber))    as check_number,
    paymentdate                 as payment_date,
    amount::decimal(12, 2)      as amount
from bronze.crm_payments
qualify row_number() over (partition by customernumber, checknumber order by _lf_extracted_at desc) = 1
